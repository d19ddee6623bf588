import sys

from ast_robot.cli import main

sys.exit(main())
