"""Reality-gap analysis: sim-vs-real statistics, system identification, retuning, reports (the episode records
they read are :mod:`ast_robot.records`)."""
