import sys

from kangaroo_box.cli import main

sys.exit(main())
