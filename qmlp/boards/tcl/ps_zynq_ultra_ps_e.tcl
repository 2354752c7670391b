# PS hook for Zynq UltraScale+ MPSoC: the board preset configures DDR, MIO and clocks; qmlp then
# sets its ports and PL clock through qmlp_ps_properties.
proc qmlp_create_ps {name} {
    qmlp_create_ip xilinx.com:ip:zynq_ultra_ps_e:* $name
    apply_bd_automation -rule xilinx.com:bd_rule:zynq_ultra_ps_e -config {apply_board_preset "1"} [get_bd_cells $name]
}
