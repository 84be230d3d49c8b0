// Wall-clock timing on the monotonic clock.
#pragma once

double ct_time_now(void);  // seconds since an arbitrary fixed point; never goes backwards
