/* core/json.c — placeholder, being written. */
