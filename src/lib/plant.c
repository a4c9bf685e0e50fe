/* Compiled only into the test-only library twin_sim_planted (see plant.h). */
#include "plant.h"

tw_plant tw_plant_active = tw_plant_none;
