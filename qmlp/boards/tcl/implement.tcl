# Step 3: synthesis, implementation, bitstream; utilisation and timing reports.

launch_runs synth_1 -jobs $qmlp_jobs
wait_on_run synth_1
qmlp_check_run synth_1 synthesis
launch_runs impl_1 -to_step write_bitstream -jobs $qmlp_jobs
wait_on_run impl_1
qmlp_check_run impl_1 implementation

open_run impl_1
report_utilization -file [file join $qmlp_reports_dir utilization.rpt]
report_utilization -hierarchical -file [file join $qmlp_reports_dir utilization_hierarchical.rpt]
report_timing_summary -max_paths 10 -file [file join $qmlp_reports_dir timing_summary.rpt]
set qmlp_wns [get_property STATS.WNS [get_runs impl_1]]
if {$qmlp_wns < 0} {
    puts "qmlp: WARNING timing not met at ${qmlp_clock_mhz} MHz (WNS $qmlp_wns ns); recompile with a lower --clock-mhz"
}
