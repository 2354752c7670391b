import sys

try:
    from .cli import main
except KeyboardInterrupt:  # Ctrl-C before main() started
    print("qmlp: interrupted", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
