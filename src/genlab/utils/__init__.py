"""Small shared helpers: atomic files, image grids, counters."""
