"""A live view of a run: typed events (events.py) and the renderers that show them (tty, plain,
json) beside the full log kept in a file (logfile.py). ``compiler.reporter`` drives them."""
