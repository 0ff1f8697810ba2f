"""pikdav: a WebDAV gateway for the PikPak cloud drive."""

__version__ = "0.1.0"
