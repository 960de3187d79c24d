FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY client ./client
COPY conductor ./conductor
RUN pip install --no-cache-dir '.[server,fast]'
ENV CONDUCTOR_AMQP_URL=amqp://guest:guest@rabbitmq:5672/ \
    CONDUCTOR_DB_URL=postgresql+asyncpg://conductor:conductor@postgres:5432/conductor
CMD ["sh", "-c", "conductor db sync && exec conductor serve"]
