module isthmus/spawner

go 1.19
