/* core/protocol.c — placeholder, being written. */
