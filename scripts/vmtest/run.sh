#!/bin/sh
# Default scenario runner inside the guest: hand control to the host driver.
exec /vmtest/bin/vmguest -connect "${vmtest_ctl:-10.0.2.2:7499}"
