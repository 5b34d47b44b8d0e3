module wisp

go 1.26.8
