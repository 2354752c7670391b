"""Sources of the board-side driver package ``qmlp_driver``. qmlp never imports them: the board
emitter copies ``qmlp_driver/`` into OUT/driver and OUT/deploy and adds ``_core/``, generated from
qmlp's own datatypes, packing, IR and simulator modules, so the board needs only numpy and pynq."""
