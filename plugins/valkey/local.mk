# plugins/valkey/ — rules for the valkey backend (filled in by its owner).
