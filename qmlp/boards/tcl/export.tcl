# Step 4: bitstream + hardware handoff (.hwh, what PYNQ reads) into the deploy package's slots,
# and the .xsa platform for Vitis users.

set qmlp_bit_dir [file join $qmlp_out_dir deploy bitstream]
file mkdir $qmlp_bit_dir
set qmlp_impl_dir [get_property DIRECTORY [get_runs impl_1]]
set qmlp_bit [file join $qmlp_impl_dir ${qmlp_bd_name}_wrapper.bit]
# Vivado 2020.1+ writes generated BD files under .gen, older releases under .srcs.
set qmlp_hwh [lindex [glob -nocomplain \
    [file join $qmlp_project_dir $qmlp_design_name.gen sources_1 bd $qmlp_bd_name hw_handoff $qmlp_bd_name.hwh] \
    [file join $qmlp_project_dir $qmlp_design_name.srcs sources_1 bd $qmlp_bd_name hw_handoff $qmlp_bd_name.hwh]] 0]
if {![file exists $qmlp_bit] || $qmlp_hwh eq ""} {
    error "qmlp: bitstream ($qmlp_bit) or hardware handoff ($qmlp_bd_name.hwh) not found after implementation"
}
# PYNQ finds the .hwh next to the .bit by base name.
file copy -force $qmlp_bit [file join $qmlp_bit_dir qmlp.bit]
file copy -force $qmlp_hwh [file join $qmlp_bit_dir qmlp.hwh]
write_hw_platform -fixed -include_bit -force [file join $qmlp_vivado_dir output qmlp.xsa]
close_project
puts "qmlp: bitstream and hwh in $qmlp_bit_dir"
