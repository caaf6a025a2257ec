from mcpproxy.cli.main import main

main()
