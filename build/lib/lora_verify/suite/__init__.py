"""The property suite, installed with the package: ``pytest --pyargs lora_verify.suite --impl MODULE``."""
