import sys

from emonet.cli.app import main

sys.exit(main())
