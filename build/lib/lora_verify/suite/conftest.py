"""The installed suite's set-up (``pytest --pyargs lora_verify.suite``): the backend and hypothesis profile."""

from lora_verify import plugin


def pytest_configure(config):
    plugin.activate(config)
