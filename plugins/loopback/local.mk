# plugins/loopback/ — rules for the loopback backend (filled in by its owner).
