# Helpers shared by the step scripts.

# Newest installed version of an IP given as vendor:library:name:* (versions differ between Vivado
# releases, so scripts never hard-code them).
proc qmlp_vlnv {pattern} {
    set defs [get_ipdefs -all $pattern]
    if {[llength $defs] == 0} {
        error "qmlp: IP $pattern is not in the IP catalog of this Vivado installation"
    }
    return [get_property VLNV [lindex [lsort -dictionary $defs] end]]
}

proc qmlp_create_ip {pattern name {properties {}}} {
    set cell [create_bd_cell -type ip -vlnv [qmlp_vlnv $pattern] $name]
    if {[llength $properties] > 0} {
        set_property -dict $properties [get_bd_cells $name]
    }
    return $cell
}

# Connect an AXI-Stream master to a slave; when their TDATA widths differ (the DMA moves
# power-of-two widths, qmlp_top whole bytes) put an AXI4-Stream data width converter between.
proc qmlp_stream {master slave master_bytes slave_bytes converter} {
    if {$master_bytes == $slave_bytes} {
        connect_bd_intf_net [get_bd_intf_pins $master] [get_bd_intf_pins $slave]
        return {}
    }
    qmlp_create_ip xilinx.com:ip:axis_dwidth_converter:* $converter [list \
        CONFIG.S_TDATA_NUM_BYTES $master_bytes CONFIG.M_TDATA_NUM_BYTES $slave_bytes \
        CONFIG.HAS_TLAST 1 CONFIG.HAS_TKEEP 1]
    connect_bd_intf_net [get_bd_intf_pins $master] [get_bd_intf_pins $converter/S_AXIS]
    connect_bd_intf_net [get_bd_intf_pins $converter/M_AXIS] [get_bd_intf_pins $slave]
    return $converter
}

# Stop with the log's location when a run did not finish.
proc qmlp_check_run {run what} {
    set progress [get_property PROGRESS [get_runs $run]]
    if {$progress ne "100%"} {
        error "qmlp: $what failed ($run at $progress); see [get_property DIRECTORY [get_runs $run]]/runme.log"
    }
}

proc qmlp_write_lines {path lines} {
    file mkdir [file dirname $path]
    set out [open $path w]
    foreach line $lines { puts $out $line }
    close $out
}
