# The sopflow application image, built from the project's own files.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY engine engine
COPY api api
COPY worker worker
COPY sopflow sopflow
COPY workflows workflows
RUN pip install --no-cache-dir ".[ops]" && useradd --system --home /app sopflow
USER sopflow
EXPOSE 8000
CMD ["sopflow", "serve", "--host", "0.0.0.0", "--port", "8000"]
