# Step 2: block design. PS (board preset) -> SmartConnect -> AXI-Lite of the DMA, of qmlp_top and
# of the batch-size GPIO; AXI DMA MM2S -> qmlp_top -> qmlp_tlast_batch -> AXI DMA S2MM (one S2MM
# transfer per batch); DMA memory traffic -> SmartConnect -> PS DMA port.
# One clock (the PS fabric clock at the requested frequency) and one reset domain.

create_bd_design $qmlp_bd_name
source [file join $qmlp_vivado_dir ps_$qmlp_ps_ip.tcl]
qmlp_create_ps ps
set_property -dict $qmlp_ps_properties [get_bd_cells ps]

qmlp_create_ip xilinx.com:ip:proc_sys_reset:* qmlp_reset
qmlp_create_ip xilinx.com:ip:axi_dma:* $qmlp_dma_name [list \
    CONFIG.c_include_sg 0 \
    CONFIG.c_sg_length_width $qmlp_dma_length_width \
    CONFIG.c_m_axi_mm2s_data_width $qmlp_dma_mm_width \
    CONFIG.c_m_axis_mm2s_tdata_width [expr {8 * $qmlp_mm2s_bytes}] \
    CONFIG.c_m_axi_s2mm_data_width $qmlp_dma_mm_width \
    CONFIG.c_s_axis_s2mm_tdata_width [expr {8 * $qmlp_s2mm_bytes}] \
    CONFIG.c_mm2s_burst_size 16 CONFIG.c_s2mm_burst_size 16]
create_bd_cell -type ip -vlnv $qmlp_ip_vlnv $qmlp_ip_name
create_bd_cell -type module -reference qmlp_tlast_batch $qmlp_batch_name
set_property CONFIG.DATA_BYTES $qmlp_out_beat_bytes [get_bd_cells $qmlp_batch_name]
qmlp_create_ip xilinx.com:ip:axi_gpio:* $qmlp_batch_gpio_name [list CONFIG.C_GPIO_WIDTH 32 CONFIG.C_ALL_OUTPUTS 1]
connect_bd_net [get_bd_pins $qmlp_batch_gpio_name/gpio_io_o] [get_bd_pins $qmlp_batch_name/frames]

connect_bd_intf_net [get_bd_intf_pins $qmlp_ip_name/m_axis] [get_bd_intf_pins $qmlp_batch_name/s_axis]
set qmlp_converters [concat \
    [qmlp_stream $qmlp_dma_name/M_AXIS_MM2S $qmlp_ip_name/s_axis $qmlp_mm2s_bytes $qmlp_in_beat_bytes qmlp_in_width] \
    [qmlp_stream $qmlp_batch_name/m_axis $qmlp_dma_name/S_AXIS_S2MM $qmlp_out_beat_bytes $qmlp_s2mm_bytes qmlp_out_width]]

qmlp_create_ip xilinx.com:ip:smartconnect:* qmlp_control [list CONFIG.NUM_SI 1 CONFIG.NUM_MI 3]
connect_bd_intf_net [get_bd_intf_pins ps/$qmlp_control_port] [get_bd_intf_pins qmlp_control/S00_AXI]
connect_bd_intf_net [get_bd_intf_pins qmlp_control/M00_AXI] [get_bd_intf_pins $qmlp_dma_name/S_AXI_LITE]
connect_bd_intf_net [get_bd_intf_pins qmlp_control/M01_AXI] [get_bd_intf_pins $qmlp_ip_name/s_axi_control]
connect_bd_intf_net [get_bd_intf_pins qmlp_control/M02_AXI] [get_bd_intf_pins $qmlp_batch_gpio_name/S_AXI]

qmlp_create_ip xilinx.com:ip:smartconnect:* qmlp_memory [list CONFIG.NUM_SI 2 CONFIG.NUM_MI 1]
connect_bd_intf_net [get_bd_intf_pins $qmlp_dma_name/M_AXI_MM2S] [get_bd_intf_pins qmlp_memory/S00_AXI]
connect_bd_intf_net [get_bd_intf_pins $qmlp_dma_name/M_AXI_S2MM] [get_bd_intf_pins qmlp_memory/S01_AXI]
connect_bd_intf_net [get_bd_intf_pins qmlp_memory/M00_AXI] [get_bd_intf_pins ps/$qmlp_dma_port]

# Clock: every fabric clock input, including the PS's own AXI port clocks, runs on the one PL clock.
set qmlp_clocked [list qmlp_reset/slowest_sync_clk qmlp_control/aclk qmlp_memory/aclk \
    $qmlp_dma_name/s_axi_lite_aclk $qmlp_dma_name/m_axi_mm2s_aclk $qmlp_dma_name/m_axi_s2mm_aclk \
    $qmlp_ip_name/ap_clk $qmlp_batch_name/aclk $qmlp_batch_gpio_name/s_axi_aclk]
foreach qmlp_conv $qmlp_converters { lappend qmlp_clocked $qmlp_conv/aclk }
connect_bd_net [get_bd_pins ps/$qmlp_clock_pin] [get_bd_pins $qmlp_clocked] \
    [get_bd_pins -of_objects [get_bd_cells ps] -filter {DIR == I && TYPE == clk}]

connect_bd_net [get_bd_pins ps/$qmlp_reset_pin] [get_bd_pins qmlp_reset/ext_reset_in]
connect_bd_net [get_bd_pins qmlp_reset/interconnect_aresetn] [get_bd_pins {qmlp_control/aresetn qmlp_memory/aresetn}]
set qmlp_reset_pins [list $qmlp_dma_name/axi_resetn $qmlp_ip_name/ap_rst_n $qmlp_batch_name/aresetn \
    $qmlp_batch_gpio_name/s_axi_aresetn]
foreach qmlp_conv $qmlp_converters { lappend qmlp_reset_pins $qmlp_conv/aresetn }
connect_bd_net [get_bd_pins qmlp_reset/peripheral_aresetn] [get_bd_pins $qmlp_reset_pins]

# Address map: let Vivado place the two register windows, then record it for the reader.
assign_bd_address
set qmlp_map [list "# qmlp $qmlp_version address map ($qmlp_board): segment offset range"]
foreach qmlp_seg [get_bd_addr_segs -of_objects [get_bd_addr_spaces ps/Data]] {
    lappend qmlp_map "$qmlp_seg [get_property OFFSET $qmlp_seg] [get_property RANGE $qmlp_seg]"
}
qmlp_write_lines [file join $qmlp_reports_dir address_map.txt] $qmlp_map
puts "qmlp: PL clock requested ${qmlp_clock_mhz} MHz, PS gives [get_property $qmlp_ps_actual_clock_key [get_bd_cells ps]] MHz"

validate_bd_design
save_bd_design
set qmlp_bd_file [get_files $qmlp_bd_name.bd]
generate_target all $qmlp_bd_file
add_files -norecurse [make_wrapper -files $qmlp_bd_file -top]
set_property top ${qmlp_bd_name}_wrapper [current_fileset]
write_bd_tcl -force [file join $qmlp_reports_dir ${qmlp_bd_name}_recreate.tcl]
