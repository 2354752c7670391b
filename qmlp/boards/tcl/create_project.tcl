# Step 1: project for the board's part and board part, with the packaged qmlp IP in the catalog.

set qmlp_out_dir [file dirname $qmlp_vivado_dir]
set qmlp_ip_dir [file join $qmlp_out_dir ip]
set qmlp_reports_dir [file join $qmlp_vivado_dir reports]
set qmlp_project_dir [file join $qmlp_vivado_dir project]
if {![file exists [file join $qmlp_ip_dir component.xml]]} {
    error "qmlp: [file join $qmlp_ip_dir component.xml] is missing; run 'qmlp compile' to package the RTL first"
}

create_project $qmlp_design_name $qmlp_project_dir -part $qmlp_part -force
# The board files' version differs between installations; any version of the same board will do.
set qmlp_found [get_board_parts -quiet $qmlp_board_part]
if {[llength $qmlp_found] == 0} {
    set qmlp_found [lsort -dictionary [get_board_parts -quiet [regsub {:[^:]*$} $qmlp_board_part {:*}]]]
    if {[llength $qmlp_found] == 0} {
        error "qmlp: Vivado has no board files for $qmlp_board_part (board $qmlp_board); install them\
               (Vivado Tools > Vivado Store > Boards, or the vendor's board-files repository) and rerun"
    }
    puts "qmlp: board files $qmlp_board_part not installed, using [lindex $qmlp_found end]"
}
set_property board_part [lindex $qmlp_found end] [current_project]
set_property target_language Verilog [current_project]
# Board-side glue in plain Verilog, used in the block design as a module reference.
add_files -norecurse [glob [file join $qmlp_vivado_dir hdl *.v]]
update_compile_order -fileset sources_1
set_property ip_repo_paths [list $qmlp_ip_dir] [current_project]
update_ip_catalog -rebuild
if {[llength [get_ipdefs -all $qmlp_ip_vlnv]] == 0} {
    error "qmlp: $qmlp_ip_dir does not provide $qmlp_ip_vlnv; rerun 'qmlp compile' to repackage the IP"
}
