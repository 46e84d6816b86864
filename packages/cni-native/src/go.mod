module isthmus/cni-native

go 1.19
