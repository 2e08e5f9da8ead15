module github.com/effect-agent-supervisor/adapters/go

go 1.19
