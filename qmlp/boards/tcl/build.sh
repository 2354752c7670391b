#!/bin/sh
# Build the bitstream with Vivado (batch mode). Arguments go to Vivado, e.g. ./build.sh -tclargs -jobs 8
set -eu
cd "$(dirname "$0")"
VIVADO="${VIVADO:-vivado}"
if ! command -v "$VIVADO" >/dev/null 2>&1; then
    echo "qmlp: Vivado is needed to build the bitstream, but '$VIVADO' is not on PATH." >&2
    echo "qmlp: install Vivado (with the board files for this board), run 'source <Vivado dir>/settings64.sh'," >&2
    echo "qmlp: then rerun $(pwd)/build.sh (or: cd $(pwd) && vivado -mode batch -source build_bitstream.tcl)." >&2
    exit 127
fi
"$VIVADO" -mode batch -notrace -nojournal -log build_bitstream.log -source build_bitstream.tcl "$@"
# Seal the bitstream slots of the deploy package so 'python3 -m qmlp_driver.check' can verify them.
if [ -f ../deploy/bitstream/qmlp.bit ] && command -v sha256sum >/dev/null 2>&1; then
    (cd ../deploy/bitstream && sha256sum qmlp.bit qmlp.hwh > SHA256SUMS)
fi
