"""Configuration: the typed schema, the default values, size parsing and value checks."""

from configs.schema import Config, load_config
from configs.sizes import ConfigError, format_size, parse_size, parse_weights

__all__ = ["Config", "ConfigError", "format_size", "load_config", "parse_size", "parse_weights"]
