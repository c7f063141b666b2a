from trust.cli.main import main

main()
