# plugins/filetail/ — rules for the filetail backend (filled in by its owner).
