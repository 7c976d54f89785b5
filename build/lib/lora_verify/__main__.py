import sys

from lora_verify.cli import main

sys.exit(main())
