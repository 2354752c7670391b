# A recording stand-in for the Vivado Tcl commands qmlp's scripts call, for the real tclsh.
# usage: tclsh vivado_stub.tcl LOG SCRIPT [script args...]
# Every stubbed call is appended to LOG as one line: the command and its arguments joined by \x1f.
# Calls of anything not stubbed fail (so a typo or a new Vivado command breaks the test), and the
# stub checks what Vivado would: cells exist before their pins are used, nets join pins of the right
# kind, referenced files and directories exist.

lassign $argv stub_log stub_script
set argv [lrange $argv 2 end]
set stub_out [open $stub_log w]
array set stub_cells {}
set stub_project {}
set stub_ip_repo {}
set stub_run_started {}

proc stub_record {args} {
    global stub_out
    puts $stub_out [join [lmap a $args {string map [list \n \\n] $a}] \x1f]
    flush $stub_out
}
proc stub_fail {message} { error "vivado-stub: $message" }
proc stub_option {arglist name} {
    set i [lsearch -exact $arglist $name]
    if {$i < 0} { return {} }
    return [lindex $arglist [expr {$i + 1}]]
}
proc stub_cell_of {path} {
    global stub_cells
    set cell [lindex [split [string trimleft $path /] /] 0]
    if {![info exists stub_cells($cell)]} { stub_fail "pin $path refers to cell '$cell' which was never created" }
    return $cell
}

rename unknown stub_tcl_unknown
proc unknown {args} { stub_fail "command not stubbed (not expected in a Vivado script): [lindex $args 0]" }

# --- project --------------------------------------------------------------------------------
proc create_project {args} {
    global stub_project
    stub_record create_project {*}$args
    set positional [lsearch -all -inline -not -glob [lsearch -all -inline -not -exact $args -force] -*]
    lassign $args name dir
    if {[stub_option $args -part] eq ""} { stub_fail "create_project without -part" }
    if {![file isdirectory [file dirname $dir]]} { stub_fail "create_project: parent of $dir missing" }
    file mkdir $dir
    set stub_project [list $name $dir]
    return $name
}
proc current_project {args} { stub_record current_project {*}$args; return project }
proc current_fileset {args} { stub_record current_fileset {*}$args; return sources_1 }
proc close_project {args} { stub_record close_project {*}$args }
proc get_board_parts {args} {
    stub_record get_board_parts {*}$args
    set pattern [lindex $args end]
    if {[info exists ::env(STUB_NO_BOARD_FILES)]} { return {} }
    if {[info exists ::env(STUB_OTHER_BOARD_VERSIONS)]} {
        # Installed: versions 1.0 and 1.10 of the board, not the one asked for.
        if {![string match *:\\* $pattern]} { return {} }
        return [list [string map {* 1.10} $pattern] [string map {* 1.0} $pattern]]
    }
    return [list $pattern]
}
proc set_property {args} {
    global stub_ip_repo
    stub_record set_property {*}$args
    if {[lindex $args 0] eq "ip_repo_paths"} {
        foreach dir [lindex $args 1] {
            if {![file exists [file join $dir component.xml]]} { stub_fail "ip_repo_paths: no component.xml in $dir" }
        }
        set stub_ip_repo [lindex $args 1]
    }
    if {[lindex $args 0] eq "-dict"} {
        set props [lindex $args 1]
        if {[llength $props] % 2} { stub_fail "set_property -dict with an odd-length list" }
        if {[llength $props] == 0} { stub_fail "set_property -dict with an empty list" }
        # The PS reports the fabric clock it can make: here exactly the one asked for.
        dict for {key value} $props {
            if {[string match CONFIG.*FREQMHZ $key] && ![string match *ACT* $key]} { set ::stub_clock_mhz $value }
        }
    }
}
proc update_ip_catalog {args} { stub_record update_ip_catalog {*}$args }
proc get_ipdefs {args} {
    global stub_ip_repo
    stub_record get_ipdefs {*}$args
    set pattern [lindex $args end]
    if {![string match xilinx.com:* $pattern]} {
        # User IP: only what the repository's component.xml declares is in the catalog.
        if {$stub_ip_repo eq ""} { stub_fail "user IP $pattern looked up before ip_repo_paths was set" }
        set fd [open [file join [lindex $stub_ip_repo 0] component.xml]]
        set xml [read $fd]
        close $fd
        set vlnv {}
        foreach tag {vendor library name version} {
            regexp "<spirit:$tag>(\[^<\]*)</spirit:$tag>" $xml -> value
            lappend vlnv $value
        }
        return [expr {[join $vlnv :] eq $pattern ? [list $pattern] : {}}]
    }
    if {![string match xilinx.com:ip:*:* $pattern]} { stub_fail "get_ipdefs: unexpected pattern $pattern" }
    # Two installed versions, so the script must pick the newest.
    return [list [string map {* 1.0} $pattern] [string map {* 2.1} $pattern]]
}
proc get_property {args} {
    global stub_project
    stub_record get_property {*}$args
    lassign $args name object
    switch -glob -- $name {
        VLNV { return $object }
        PROGRESS { return [expr {[info exists ::env(STUB_RUN_FAILS)] ? "30%" : "100%"}] }
        DIRECTORY { lassign $stub_project pname dir; return [file join $dir $pname.runs $object] }
        STATS.WNS { return 0.125 }
        CONFIG.*ACT*FREQMHZ { return $::stub_clock_mhz }
        OFFSET { return 0xA0000000 }
        RANGE { return 64K }
        default { stub_fail "get_property $name not stubbed" }
    }
}

# --- block design ---------------------------------------------------------------------------
proc create_bd_design {args} { stub_record create_bd_design {*}$args; return [lindex $args end] }
proc create_bd_cell {args} {
    global stub_cells
    stub_record create_bd_cell {*}$args
    set name [lindex $args end]
    switch -- [stub_option $args -type] {
        ip {
            if {[stub_option $args -vlnv] eq ""} { stub_fail "create_bd_cell $name: -type ip needs -vlnv" }
            if {[string match *\\** [stub_option $args -vlnv]]} { stub_fail "create_bd_cell $name: wildcard VLNV" }
        }
        module {
            # A module reference needs a project source defining that module.
            set ref [stub_option $args -reference]
            if {![stub_defines_module $ref]} { stub_fail "module reference $ref: no added source defines module $ref" }
        }
        default { stub_fail "create_bd_cell $name: -type must be ip or module" }
    }
    if {[info exists stub_cells($name)]} { stub_fail "cell $name created twice" }
    set stub_cells($name) [concat [stub_option $args -vlnv] [stub_option $args -reference]]
    return $name
}
proc get_bd_cells {args} {
    stub_record get_bd_cells {*}$args
    foreach cell $args { stub_cell_of $cell }
    return [lmap c $args {string cat cell: $c}]
}
proc get_bd_pins {args} {
    stub_record get_bd_pins {*}$args
    set of [stub_option $args -of_objects]
    if {$of ne ""} {
        if {[stub_option $args -filter] eq ""} { stub_fail "get_bd_pins -of_objects without -filter" }
        set cell [string range [lindex $of 0] 5 end]
        return [list pin:$cell/maxihpm0_aclk pin:$cell/saxihp0_aclk]
    }
    set result {}
    foreach path [lindex $args 0] { stub_cell_of $path; lappend result pin:$path }
    return $result
}
proc get_bd_intf_pins {args} {
    stub_record get_bd_intf_pins {*}$args
    set path [lindex $args 0]
    stub_cell_of $path
    return intf:$path
}
proc connect_bd_net {args} {
    stub_record connect_bd_net {*}$args
    set pins [concat {*}$args]
    if {[llength $pins] < 2} { stub_fail "connect_bd_net with fewer than two pins: $args" }
    foreach pin $pins { if {![string match pin:* $pin]} { stub_fail "connect_bd_net given $pin (not a pin)" } }
}
proc connect_bd_intf_net {args} {
    stub_record connect_bd_intf_net {*}$args
    if {[llength $args] != 2} { stub_fail "connect_bd_intf_net takes two interface pins: $args" }
    foreach pin $args { if {![string match intf:* $pin]} { stub_fail "connect_bd_intf_net given $pin" } }
}
proc apply_bd_automation {args} {
    stub_record apply_bd_automation {*}$args
    if {[stub_option $args -rule] eq ""} { stub_fail "apply_bd_automation without -rule" }
}
proc assign_bd_address {args} { stub_record assign_bd_address {*}$args }
proc get_bd_addr_spaces {args} { stub_record get_bd_addr_spaces {*}$args; stub_cell_of [lindex $args 0]; return space:[lindex $args 0] }
proc get_bd_addr_segs {args} {
    stub_record get_bd_addr_segs {*}$args
    return [list /ps/Data/SEG_axi_dma_0_Reg /ps/Data/SEG_qmlp_0_Reg]
}
proc validate_bd_design {args} { stub_record validate_bd_design {*}$args }
proc save_bd_design {args} { stub_record save_bd_design {*}$args }
proc get_files {args} { stub_record get_files {*}$args; return file:[lindex $args end] }
proc generate_target {args} { stub_record generate_target {*}$args }
proc make_wrapper {args} {
    global stub_project
    stub_record make_wrapper {*}$args
    lassign $stub_project pname dir
    set wrapper [file join $dir $pname.gen sources_1 bd qmlp_bd hdl qmlp_bd_wrapper.v]
    file mkdir [file dirname $wrapper]
    close [open $wrapper w]
    return $wrapper
}
set stub_sources {}
proc add_files {args} {
    global stub_sources
    stub_record add_files {*}$args
    set files [concat {*}[lsearch -all -inline -not -glob $args -*]]
    if {[llength $files] == 0} { stub_fail "add_files without files" }
    foreach f $files {
        if {![file exists $f]} { stub_fail "add_files: $f does not exist" }
        lappend stub_sources $f
    }
}
proc stub_defines_module {name} {
    global stub_sources
    foreach f $stub_sources {
        set fd [open $f]
        set text [read $fd]
        close $fd
        if {[regexp "(^|\n)\\s*module\\s+$name\\M" $text]} { return 1 }
    }
    return 0
}
proc update_compile_order {args} { stub_record update_compile_order {*}$args }
proc write_bd_tcl {args} {
    stub_record write_bd_tcl {*}$args
    set path [lindex $args end]
    file mkdir [file dirname $path]
    close [open $path w]
}

# --- runs and reports -----------------------------------------------------------------------
proc get_runs {args} { stub_record get_runs {*}$args; return [lindex $args 0] }
proc launch_runs {args} {
    global stub_project stub_run_started
    stub_record launch_runs {*}$args
    set run [lindex [lsearch -all -inline -not -glob $args -*] 0]
    if {$run eq "impl_1"} {
        if {[lsearch -exact $stub_run_started synth_1] < 0} { stub_fail "impl_1 launched before synth_1" }
        if {[stub_option $args -to_step] ne "write_bitstream"} { stub_fail "impl_1 must run -to_step write_bitstream" }
        # What Vivado leaves behind: the bitstream and the hardware handoff.
        lassign $stub_project pname dir
        set bit [file join $dir $pname.runs impl_1 qmlp_bd_wrapper.bit]
        set hwh [file join $dir $pname.gen sources_1 bd qmlp_bd hw_handoff qmlp_bd.hwh]
        foreach f [list $bit $hwh] { file mkdir [file dirname $f]; set h [open $f w]; puts $h "stub $f"; close $h }
    }
    lappend stub_run_started $run
}
proc wait_on_run {args} { stub_record wait_on_run {*}$args }
proc open_run {args} { stub_record open_run {*}$args }
proc report_utilization {args} { stub_record report_utilization {*}$args; stub_touch [stub_option $args -file] }
proc report_timing_summary {args} { stub_record report_timing_summary {*}$args; stub_touch [stub_option $args -file] }
proc write_hw_platform {args} { stub_record write_hw_platform {*}$args; stub_touch [lindex $args end] }
proc stub_touch {path} {
    if {$path eq ""} { stub_fail "report without -file" }
    file mkdir [file dirname $path]
    close [open $path w]
}

source $stub_script
close $stub_out
