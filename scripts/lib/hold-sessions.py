"""Opens COUNT authenticated SFTP sessions to 127.0.0.1:PORT as USER with the key KEY, from
source addresses spread over 127.0.1.2 onwards, prints "ready COUNT" once every session has
answered a request, and holds them, idle, until its standard input closes. Used by
scripts/bench-sessions.

    python3 hold-sessions.py PORT USER KEY COUNT [CONCURRENT_LOGINS]
"""

import asyncio
import sys

import asyncssh


async def open_session(index, port, user, key, logins):
    source = f"127.0.{1 + index // 250}.{2 + index % 250}"
    async with logins:
        connection = await asyncssh.connect(
            "127.0.0.1",
            port,
            username=user,
            client_keys=[key],
            known_hosts=None,
            local_addr=(source, 0),
            keepalive_interval=0,
            # Thousands of logins from one Python process on a shared machine are slow.
            login_timeout=900,
        )
        sftp = await connection.start_sftp_client()
        await sftp.realpath(".")
    return connection, sftp


async def main():
    port, user, key, count = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
    concurrent = int(sys.argv[5]) if len(sys.argv) > 5 else 16
    logins = asyncio.Semaphore(concurrent)
    key = asyncssh.read_private_key(key)
    sessions = await asyncio.gather(*(open_session(i, port, user, key, logins) for i in range(count)))
    print(f"ready {len(sessions)}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for connection, sftp in sessions:
        sftp.exit()
        connection.close()


asyncio.run(main())
