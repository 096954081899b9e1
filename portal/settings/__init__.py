"""Settings: `base` is shared; `staff` and `tenant` are the two sites; `test` is for pytest."""
