from nasface.cli import main

main()
