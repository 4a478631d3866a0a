from ridethrough.cli import main

main()
