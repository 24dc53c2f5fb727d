# man/ — man pages, paths substituted at make time.
