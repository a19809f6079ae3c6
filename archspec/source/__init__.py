"""Source stage: YAML text to plain data, with the line and column of every key and value."""

from archspec.source.loader import LoaderLimits, Located, load_file, load_text

__all__ = ["LoaderLimits", "Located", "load_file", "load_text"]
