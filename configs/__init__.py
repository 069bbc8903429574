"""Configuration: the typed schema, the default values and size parsing."""

from configs.schema import Config, ConfigError, format_size, load_config, parse_size

__all__ = ["Config", "ConfigError", "format_size", "load_config", "parse_size"]
