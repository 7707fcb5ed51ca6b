from sopflow.cli import main

main()
