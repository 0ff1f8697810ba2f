"""Paths over a PikPak drive: path → entry resolution, listing and link caches."""
