"""Ground truth from the Linux kernel: load rules into network namespaces,
send real packets, and compare what netfilter did with the analyzer."""
