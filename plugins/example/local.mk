# plugins/example/ — rules for the example backend (filled in by its owner).
