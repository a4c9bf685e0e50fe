/* twin harness: the cluster workload, twin-sim's default world (workload_cluster.c). */
#ifndef TWIN_HARNESS_WORKLOAD_CLUSTER_H
#define TWIN_HARNESS_WORKLOAD_CLUSTER_H

#include "workload.h"

extern const tw_workload tw_workload_cluster;

#endif
