"""Ground segment: space link, console, archive."""
