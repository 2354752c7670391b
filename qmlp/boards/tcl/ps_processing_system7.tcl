# PS hook for Zynq-7000: board preset, and DDR/FIXED_IO made external (they are package pins).
proc qmlp_create_ps {name} {
    qmlp_create_ip xilinx.com:ip:processing_system7:* $name
    apply_bd_automation -rule xilinx.com:bd_rule:processing_system7 \
        -config {make_external "FIXED_IO, DDR" apply_board_preset "1" Master "Disable" Slave "Disable"} \
        [get_bd_cells $name]
}
