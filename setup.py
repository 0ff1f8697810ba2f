"""Everything is in setup.cfg; this adds the commit a build comes from (``pikdav --version``).

A wheel built from a git checkout gets ``pikdav/COMMIT``; an sdist gets it too, so that a wheel
built from the sdist (no git there) still knows it.
"""

import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from pikdav.version import git_commit  # noqa: E402


class BuildPyWithCommit(build_py):
    def run(self) -> None:
        super().run()
        found = git_commit(HERE)
        if found and not self.editable_mode:
            (Path(self.build_lib) / "pikdav" / "COMMIT").write_text(found + "\n")


class SdistWithCommit(sdist):
    def make_release_tree(self, base_dir, files) -> None:
        super().make_release_tree(base_dir, files)
        found = git_commit(HERE)
        if found:
            target = Path(base_dir) / "pikdav" / "COMMIT"
            target.unlink(missing_ok=True)  # a hard link to the checkout's file, if any
            target.write_text(found + "\n")


setup(cmdclass={"build_py": BuildPyWithCommit, "sdist": SdistWithCommit})
