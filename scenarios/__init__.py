"""The shipped scenario files (TOML); a package only so a non-editable install carries them."""
