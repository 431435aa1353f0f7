"""Configuration: every setting declared once (settings.py: its section, key,
type, default, flag and environment variable), the TOML config file read and
checked against those declarations (loading.py), and the `[[schedule]]`
tables (schedules.py). Flags, environment and file meet here, so every
process that reads the same file runs with the same settings.
"""
