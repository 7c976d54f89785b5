"""This repository's test set-up: the suite's pytest plugin (its ini option in pyproject.toml chooses the backend
before any kernel loads)."""

pytest_plugins = ["lora_verify.plugin"]
