"""Named SQL, one module per table group; values always travel as parameters."""
