"""``python -m repcurate`` runs the command line."""
import sys

from repcurate_cli.main import main

sys.exit(main())
